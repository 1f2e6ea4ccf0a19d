import sys
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from runners.tasks import registry
from runners.embedded.world2.tasks import WORLD2_TASKS
import dataclasses
WORLD2_TASKS = {n: dataclasses.replace(t, benchmark='embedded') for n, t in WORLD2_TASKS.items()}
registry.TASKS.update(WORLD2_TASKS); registry._BY_KEY.update({registry._key(n): t for n, t in WORLD2_TASKS.items()})
import runners.tasks as t
getattr(t, "TASKS", {}).update(WORLD2_TASKS)
from runners import finetune
sys.exit(finetune.main(sys.argv[1:]))
