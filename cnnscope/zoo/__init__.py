"""The model zoo: every architecture the source documents name.

Importing this package imports each family file, which registers its models.
A family file holds model code only: no counting, no rendering.
"""

from cnnscope.zoo._registry import (  # noqa: F401
    ModelInfo,
    all_models,
    families,
    get_model,
    list_models,
    model_info,
    register_model,
)

# Family files register themselves on import: every public module of this package
# is imported, so adding a family is adding a file.
import importlib as _importlib
import pkgutil as _pkgutil

for _mod in sorted(m.name for m in _pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    _importlib.import_module(f"{__name__}.{_mod}")
