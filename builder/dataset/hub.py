"""Publishing to the Hugging Face Hub (thin on purpose: huggingface_hub does the work).

Not exercised against the real Hub here (it cannot be reached from this machine): tests run
this code against huggingface_hub's own client with a fake HTTP transport.
"""

from __future__ import annotations

import os
from pathlib import Path

from builder.errors import BuilderError
from builder.outputs import MARKER


def push_folder(folder: Path, repo_id: str, tag: str | None = None, message: str | None = None, api=None) -> str:
    """Create the dataset repo if needed, upload `folder`, optionally tag the commit; returns the repo URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    token = os.environ.get("HF_TOKEN")
    if api is None and not token:
        raise BuilderError(
            "HF_TOKEN is not set: create a write token at huggingface.co/settings/tokens and export HF_TOKEN"
        )
    api = api or HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="dataset",
            commit_message=message or f"Upload {Path(folder).name}",
            ignore_patterns=[MARKER],  # local bookkeeping (builder.outputs), not part of the dataset
        )
        if tag:
            api.create_tag(
                repo_id, tag=tag, repo_type="dataset", revision=commit.oid, tag_message=message or tag, exist_ok=False
            )
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise BuilderError(f"the Hub refused the upload to {repo_id} ({status}): {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise BuilderError(f"cannot reach the Hub to upload {repo_id} ({exc}); nothing was tagged") from None
    return f"https://huggingface.co/datasets/{repo_id}"
