"""Search methods behind one interface; importing this package registers them all."""

from methods import darts, gdas, pcdarts, rome  # noqa: F401,E402  (registration side effects)
from methods.base import METHODS, SearchMethod, build_method, register_method  # noqa: F401
