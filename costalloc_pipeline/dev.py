"""`make dev`: the Dagster UI and the REST API on the same embedded data (Ctrl-C stops both).

The daemon started by `dagster dev` runs the sensor and the schedules, so a POST to the API is
picked up and its relocation run launched, as in production. DAGSTER_HOME, when set, names the
Dagster instance to show (the demo's, say); otherwise it is `.dagster_home` in the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from costalloc_pipeline.bootstrap import bootstrap
from costalloc_pipeline.errors import exit_2_on_caller_error
from costalloc_pipeline.runtime import resolve_settings

ROOT = Path(__file__).resolve().parent.parent
API_PORT = os.environ.get("COSTALLOC_API_PORT", "8000")
UI_PORT = os.environ.get("COSTALLOC_UI_PORT", "3000")


def main() -> None:
    # A configuration mistake is one line and exit 2, not a traceback.
    with exit_2_on_caller_error():
        settings = resolve_settings()
    result = bootstrap(settings)
    if result.admin_token:
        print(f"admin token (shown once): {result.admin_token}")
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or ROOT / ".dagster_home").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    # An instance that has its own configuration (PostgreSQL storage, say) keeps it.
    if not (dagster_home / "dagster.yaml").exists():
        shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "COSTALLOC_DATA_DIR": str(settings.data_dir.resolve()),
        "COSTALLOC_S3_ENDPOINT_URL": settings.s3_endpoint_url or "aws",
    }
    bin_dir = Path(sys.executable).parent
    api = subprocess.Popen([bin_dir / "costalloc", "serve", "--port", API_PORT], env=env)
    print(f"REST API on http://127.0.0.1:{API_PORT}; Dagster UI on http://127.0.0.1:{UI_PORT}", flush=True)
    try:
        subprocess.run(
            [bin_dir / "dagster", "dev", "-w", str(ROOT / "workspace.yaml"), "-p", UI_PORT], env=env, cwd=dagster_home
        )
    except KeyboardInterrupt:
        pass
    finally:
        api.terminate()
        api.wait()


if __name__ == "__main__":
    main()
