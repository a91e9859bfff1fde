"""`pulumi up`: read the stack configuration, wire the components, export the outputs.

Bad configuration stops here, before any resource is declared.
"""

import pulumi
from chorus_infra.config import ConfigError, from_pulumi_config
from chorus_infra.program import run

try:
    config = from_pulumi_config()
except ConfigError as err:
    raise pulumi.RunError(str(err)) from None

for key, value in run(config).items():
    pulumi.export(key, value)
