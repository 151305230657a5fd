from torchfit.cli.main import entrypoint

entrypoint()
