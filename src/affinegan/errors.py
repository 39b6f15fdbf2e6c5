"""The one exception users see: a one-line message naming the file and the fix."""


class AffineGANError(Exception):
    """An error the user can fix (bad input, missing file, wrong flag).

    The CLI prints ``str(err)`` on one line and exits with status 2, never a traceback.
    """
