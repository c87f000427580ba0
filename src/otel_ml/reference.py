"""Reference profiles (placeholder: replaced by the reference/drift work)."""


class Reference:
    pass
