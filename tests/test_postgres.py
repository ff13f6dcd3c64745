"""The same storage on PostgreSQL: migrations, repository, shares, a chat turn.

Runs when GPT_OSS_CHAT_TEST_DATABASE_URL names a PostgreSQL server whose user may create
databases (.ci/run starts one); each test gets a database of its own, dropped afterwards.
The repository and share-link tests of test_storage.py and test_shares.py run here again
unchanged: this module's `url` fixture hands them a PostgreSQL database instead of SQLite.
"""

import os
import secrets

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from storage.db import downgrade, open_engine, upgrade
from storage.repository import Repository
from storage.schema import Base
from tests.test_shares import (  # noqa: F401 - collected again here, on PostgreSQL
    shares,
    test_bad_requests,
    test_bad_tokens_are_gone,
    test_copy_into_a_new_chat,
    test_deleting_the_conversation_ends_its_links,
    test_expiry_and_revoke,
    test_migration_from_the_previous_schema_keeps_data,
    test_only_the_owner_shares_lists_and_revokes,
    test_reasoning_is_left_out_unless_asked,
    test_snapshot_does_not_follow_later_messages,
    test_token_is_long_and_random,
)
from tests.test_storage import (  # noqa: F401 - collected again here, on PostgreSQL
    test_create_append_and_read_back,
    test_export_json_and_markdown,
    test_interrupted_on_restart,
    test_list_newest_first,
    test_malformed_ids_are_not_found,
    test_many_writers_never_hit_database_is_locked,
    test_migration_to_steps_keeps_answers_and_makes_tool_calls_searchable,
    test_migrations_down_and_up_again,
    test_owners_never_see_each_other,
    test_plain_search_fallback,
    test_rename_and_delete,
    test_tool_results_are_searchable,
)
from tests.test_tree import (  # noqa: F401 - collected again here, on PostgreSQL
    test_edits_are_siblings_of_the_message_they_edit,
    test_every_answer_is_kept_and_the_branch_shown_is_remembered,
    test_exports_carry_the_tree_and_the_branch_shown,
    test_migration_to_branches_makes_single_paths_and_back,
    test_search_finds_every_branch,
)

SERVER = os.environ.get("GPT_OSS_CHAT_TEST_DATABASE_URL", "")
pytestmark = pytest.mark.skipif(not SERVER.startswith("postgresql"),
                                reason="set GPT_OSS_CHAT_TEST_DATABASE_URL to a PostgreSQL URL (.ci/run starts one)")


@pytest.fixture
def url():
    """A fresh PostgreSQL database (the shared tests' `repo` fixture opens it)."""
    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    name = "chat_" + secrets.token_hex(6)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrations_from_blank_match_the_models(url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = open_engine(url)
    upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    downgrade(engine, "base")
    assert "messages" not in inspect(engine).get_table_names()
    engine.dispose()


def test_a_chat_turn_on_postgresql(url, make_host):
    from backend.services.chat import ChatOptions, ChatService

    repo = Repository.open(url)
    snaps = list(ChatService(repo, make_host()).send("alice", None, "hi there", ChatOptions(max_new_tokens=400)))
    user, answer = repo.get("alice", snaps[-1].conversation_id).messages
    assert user.content == "hi there" and answer.status == "complete" and answer.reasoning and answer.content
    repo.engine.dispose()
