"""LoRA training (/train): settings and defaults (no torch), the training set, the trainer, the
kohya-layout output. Import ``inference.training.trainer`` only where torch may load."""
