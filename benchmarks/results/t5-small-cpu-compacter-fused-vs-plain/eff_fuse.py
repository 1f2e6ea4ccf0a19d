import sys, methods.adapter as a
a.FUSE_MIN_ELEMENTS = 1024 * 512
from runners import efficiency
sys.argv = ["x", "--recipes", "compacter", "/tmp/b/compacter-unfused.yaml", "--repeats", "14", "--large-apply", "none", "--output-dir", "/tmp/eff-fuse"]
efficiency.main()
