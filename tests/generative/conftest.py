from tests._threads import one_torch_thread  # noqa: F401 (autouse fixture)
