from tests.integration.conftest import emulator

__all__ = ["emulator"]
