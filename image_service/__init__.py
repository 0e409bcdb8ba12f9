"""The image service: Stable Diffusion (or the tiny demo pipeline) behind gRPC ImageService, with
annotations derived from the model's own cross-attention."""
