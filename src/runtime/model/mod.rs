//! Models of a recipe on candle: decoder, ViT, projector, losses, optimiser.
