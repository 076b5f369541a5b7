"""Who may reach what: the one authorization model every route and service applies.

A caller is an admin (everything) or a tenant limited to some repositories. A tenant's
requests name only its own repositories' jobs, runs, notifiers, audit entries and events;
a reference to anything else is answered exactly as if it did not exist, so a tenant cannot
even learn that another repository is there. Some settings are for admins alone, because
they reach beyond one repository or beyond the sandbox (see :data:`ADMIN_ONLY`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# What only an admin may do, with why — the README's table is made from the same words.
ADMIN_ONLY = {
    "shell": "a shell job runs on the ghapp server itself, outside any sandbox",
    "bypass": "bypassPermissions lets a session run anything without asking",
    "installation": "a job on an installation or a list of repositories reaches beyond one "
    "repository",
    "move": "moving a job to other repositories or another runner changes what it may reach",
    "global_notifier": "a notifier for every repository hears about every repository",
    "scheduler": "starting and stopping the scheduler affects every repository",
}


@dataclass(frozen=True)
class Scope:
    """The repositories a caller may see; ``None`` for an admin, who sees everything."""

    repo_ids: frozenset[int] | None

    @property
    def is_admin(self) -> bool:
        return self.repo_ids is None

    def sees(self, repo_id: int | None) -> bool:
        """May this caller see ``repo_id``? Installation-wide things (None) are admins'."""
        if self.repo_ids is None:
            return True
        return repo_id is not None and repo_id in self.repo_ids

    def sees_all(self, repo_ids: Iterable[int]) -> bool:
        """For things limited to a list of repositories: a non-empty list, all visible.
        An empty list means every repository, which only an admin sees."""
        wanted = set(repo_ids)
        if self.repo_ids is None:
            return True
        return bool(wanted) and wanted <= self.repo_ids


ADMIN = Scope(None)
