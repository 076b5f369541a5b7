"""The dashboard: server-rendered pages over the same services as the API.

Jinja2 templates (sandboxed, autoescaped), one small vanilla script for actions and live
updates over server-sent events, and sign-in with an API token. :func:`dashboard_routes`
gives the routes ``create_app`` mounts.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ghapp.dashboard import cron, events, job_page, jobs, notifiers, overview, runs
from ghapp.dashboard.core import STATIC, Dashboard
from ghapp.dashboard.login import login_routes


def dashboard_routes() -> list[BaseRoute]:
    dashboard = Dashboard()
    page = dashboard.page
    login_page, login, logout = login_routes(dashboard)
    get, post = ["GET"], ["POST"]
    return [
        Route("/login", login_page, methods=get),
        Route("/login", login, methods=post),
        Route("/logout", logout, methods=post),
        Route("/", page(overview.overview), methods=get),
        Route("/events", page(events.events), methods=get),
        Route("/dashboard/cron", page(cron.cron_endpoint), methods=get),
        Route("/jobs/new", page(jobs.new_job), methods=get),
        Route("/jobs", page(jobs.create_job), methods=post),
        Route("/jobs/{job_id}/edit", page(jobs.edit_job), methods=get),
        Route("/jobs/{job_id}", page(job_page.job_page), methods=get),
        Route("/jobs/{job_id}", page(jobs.update_job), methods=post),
        Route("/jobs/{job_id}/run", page(jobs.run_job), methods=post),
        Route("/jobs/{job_id}/pause", page(jobs.pause_job), methods=post),
        Route("/jobs/{job_id}/resume", page(jobs.resume_job), methods=post),
        Route("/jobs/{job_id}/delete", page(jobs.confirm_delete), methods=get),
        Route("/jobs/{job_id}/delete", page(jobs.delete_job), methods=post),
        Route("/runs", page(runs.run_list), methods=get),
        Route("/runs/{run_id}", page(runs.run_detail), methods=get),
        Route("/runs/{run_id}/retry", page(runs.retry_run), methods=post),
        Route("/runs/{run_id}/cancel", page(runs.cancel_run), methods=post),
        Route("/notifiers", page(notifiers.notifier_list), methods=get),
        Route("/notifiers", page(notifiers.create_notifier), methods=post),
        Route("/notifiers/new", page(notifiers.new_notifier), methods=get),
        Route("/notifiers/{notifier_id}/edit", page(notifiers.edit_notifier), methods=get),
        Route("/notifiers/{notifier_id}", page(notifiers.update_notifier), methods=post),
        Route("/notifiers/{notifier_id}/test", page(notifiers.test_notifier), methods=post),
        Route("/notifiers/{notifier_id}/enable", page(notifiers.enable_notifier), methods=post),
        Route("/notifiers/{notifier_id}/disable", page(notifiers.disable_notifier), methods=post),
        Route(
            "/notifiers/{notifier_id}/delete", page(notifiers.confirm_delete_notifier), methods=get
        ),
        Route("/notifiers/{notifier_id}/delete", page(notifiers.delete_notifier), methods=post),
        Mount("/dashboard/static", app=StaticFiles(directory=STATIC), name="dashboard-static"),
    ]
