"""fastnn's own exceptions."""


class DivergenceError(FloatingPointError):
    """The loss became NaN or inf during training.

    Raised by :meth:`fastnn.MLP.train_step` (which then leaves the model untouched)
    and by :meth:`fastnn.MLP.fit`, whose exception carries the epochs done in its
    ``history`` attribute.
    """
