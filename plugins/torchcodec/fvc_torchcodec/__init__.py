"""fvc-torchcodec: ``data.decoder: torchcodec``, TorchCodec as the decoder of the loaders' datasets."""
