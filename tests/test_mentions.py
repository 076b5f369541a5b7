"""Mentions of the app (``@<app-slug>``): where one counts, and what the request is."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghapp.app_identity import known_app_slug
from ghapp.triggers.index import JobIndex
from ghapp.triggers.mentions import bot_login, find_mention, is_app_login
from tests.test_installation_sync import standin, sync_of, sync_settings

__all__ = ["standin"]  # the GitHub stand-in of tests.test_installation_sync, reused

SLUG = "ghapp-bot"


@pytest.mark.parametrize(
    ("body", "request_text"),
    [
        ("@ghapp-bot fix the parser", "fix the parser"),
        ("@GHAPP-Bot fix it", "fix it"),  # logins are case-insensitive
        ("Hi @ghapp-bot, please look", "please look"),
        ("@ghapp-bot[bot] do it", "do it"),  # the bot user's own login
        ("thanks @ghapp-bot", ""),  # a bare mention
        ("(@ghapp-bot) why?", ") why?"),
        ("first line\n@ghapp-bot this fails:\n```\ntrace\n```", "this fails:\n```\ntrace\n```"),
        ("@ghapp-bot go <!-- the template's hint --> now", "go  now"),
        ("`code` and @ghapp-bot here", "here"),
        ("> quoted\n\n@ghapp-bot yes", "yes"),
        ("@ghapp-bot one\n@ghapp-bot two", "one\n@ghapp-bot two"),  # the first one
    ],
)
def test_a_mention_and_its_request(body: str, request_text: str) -> None:
    assert find_mention(body, SLUG) == request_text


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        "no mention here",
        "me@ghapp-bot.com wrote",  # an e-mail address
        "@ghapp-bot-other do it",  # someone else
        "@ghapp-bot2 do it",
        "@ghapp-bot_x do it",
        "ask @ghapp do it",  # a prefix of the slug
        "```\n@ghapp-bot fix\n```",  # fenced code
        "~~~\n@ghapp-bot fix\n~~~",
        "```\n@ghapp-bot fix",  # an unterminated fence runs to the end
        "`@ghapp-bot fix`",  # an inline code span
        "``a ` @ghapp-bot``",
        "`a\n@ghapp-bot`",  # a code span over a line break
        "> @ghapp-bot fix",  # quoting someone
        ">> @ghapp-bot fix",
        "<!-- @ghapp-bot fix -->",  # an HTML comment
        "<!--\n@ghapp-bot fix\n-->",
        "text <!-- hidden\n@ghapp-bot fix -->",
        "text <!-- never closed @ghapp-bot fix",  # in doubt: hidden
    ],
)
def test_no_mention(body: str | None) -> None:
    assert find_mention(body, SLUG) is None


def test_without_a_slug_nothing_is_a_mention() -> None:
    assert find_mention("@ghapp-bot hi", "") is None
    assert find_mention("@ hi", "") is None
    assert find_mention("@a.b hi", "a.b") is None  # not a slug GitHub makes


def test_the_bot_login() -> None:
    assert bot_login(SLUG) == "ghapp-bot[bot]"
    assert is_app_login("GHAPP-BOT[bot]", SLUG)
    assert not is_app_login("ghapp-bot", SLUG)
    assert not is_app_login("ghapp-bot[bot]", None)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("@ghap-bot`~>!<-\n\r \tx[]")) | st.characters()))
def test_never_raises_and_finds_only_real_mentions(body: str) -> None:
    found = find_mention(body, SLUG)
    if found is not None:
        assert "@ghapp-bot" in body.lower()
        assert found == found.strip()


# -- the app's slug, known on the webhook path ---------------------------------------------------


async def test_the_slug_is_learnt_by_the_installation_sync_and_held_by_the_job_index(
    db, standin, tmp_path
) -> None:
    index = JobIndex(db, refresh_every=0)
    await index.ensure_fresh()
    assert index.app_slug is None  # unknown: nothing mentions the app
    await sync_of(sync_settings(db.url, tmp_path, standin), db).pass_once()
    async with db.read() as conn:
        assert await known_app_slug(conn) == standin.app_slug
    await index.ensure_fresh()  # learnt without any job changing
    assert index.app_slug == standin.app_slug
    configured = JobIndex(db, refresh_every=0, app_slug="our-own")
    await configured.ensure_fresh()
    assert configured.app_slug == "our-own"  # GHAPP_APP_SLUG wins
