"""Methods: implementations of the engine's contract (`surgery.method`).

Importing this package imports every module and subpackage in it, so each bundled method
registers itself (`surgery.method.register_method`): a new method is a new module here plus a
recipe YAML file. The engine imports this package only through the ``t5_surgery.methods`` entry
point (pyproject.toml), never by name.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
