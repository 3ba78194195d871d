"""The static model-serving runtime, copied into every build context as ``nbship_runtime``.

It imports nothing from ``nbship`` (relative imports only), so the same tested code runs in the image.
"""
