"""The pluggy marker plugin authors decorate their hook implementations with.

It lives in the core so a plugin package depends only on `asr_flywheel`; the hook specifications
that validate these implementations live in `plugins.hookspecs` under the same project name.
"""

import pluggy

PROJECT_NAME = "asr_flywheel"
#: Entry-point group through which built-in and third-party plugins are discovered.
ENTRY_POINT_GROUP = "asr_flywheel"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
