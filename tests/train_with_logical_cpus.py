"""`python tests/train_with_logical_cpus.py N MODULE ARGS...`: runs MODULE's `main(ARGS)` after
splitting the host CPU into N logical TensorFlow devices (N=1 leaves TensorFlow untouched).

The device layout is fixed when the backend starts, so distribution tests run training in a
fresh process through this script.
"""

import importlib
import sys

if __name__ == "__main__":
    logical_cpus, module = int(sys.argv[1]), sys.argv[2]
    if logical_cpus > 1:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    raise SystemExit(importlib.import_module(module).main(sys.argv[3:]))
