"""Operations: health and readiness, metrics, the model holder (reload and hot swap), workers."""
