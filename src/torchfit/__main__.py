"""``python -m torchfit``."""

from torchfit.cli.main import entrypoint

if __name__ == "__main__":
    entrypoint()
