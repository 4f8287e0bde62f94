"""The model zoo: every architecture the source documents name.

Each family file registers its models when imported. The registry imports them on
demand: the one file a model name needs (``_index.py`` says which), or all of them for
listing. A family file holds model code only: no counting, no rendering.
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

