"""Typed SQLAlchemy models: the one description of the schema that Alembic migrations follow."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lizardctl.core.vocabulary import (
    RECORDED_RUN_STATUSES,
    CaseStatus,
    Reason,
    RunStatus,
    SchemaFormat,
    Verdict,
    one_of,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware in and out on both engines (SQLite keeps no offset: store UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timezone-aware column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        """On SQLite, write the text SQLAlchemy's ``DATETIME`` would in one C call.

        Its processor builds the text from a dict of seven fields, the costliest step of a
        bulk insert's parameters; ``isoformat`` gives the very same ``YYYY-MM-DD
        HH:MM:SS.ffffff`` (years are 1-9999, four digits either way), so stored values and
        comparisons with them are unchanged. PostgreSQL takes the datetime as it is.
        """
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        to_naive_utc = self.process_bind_param

        def process(value: datetime | None) -> str | None:
            naive = to_naive_utc(value, dialect)
            return None if naive is None else naive.isoformat(" ", "microseconds")

        return process


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType}  # noqa: RUF012


class CameraType(Base):
    """A camera vendor's metadata layout, known by name (``camerus1``)."""

    __tablename__ = "camera_types"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SchemaVersion(Base):
    """One registered schema file of a camera type; cases remember which one validated them."""

    __tablename__ = "schema_versions"
    __table_args__ = (
        UniqueConstraint("camera_type", "version"),
        UniqueConstraint("camera_type", "digest"),
        CheckConstraint(one_of("file_format", SchemaFormat), name="file_format_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_type: Mapped[str] = mapped_column(ForeignKey("camera_types.name", ondelete="RESTRICT"))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    file_format: Mapped[str] = mapped_column(String(8), default=SchemaFormat.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Camera(Base):
    __tablename__ = "cameras"
    __table_args__ = (
        CheckConstraint("latitude >= -90 AND latitude <= 90", name="latitude_range"),
        CheckConstraint("longitude >= -180 AND longitude <= 180", name="longitude_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    camera_type: Mapped[str] = mapped_column(
        ForeignKey("camera_types.name", ondelete="RESTRICT"), index=True
    )
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    description: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Photo(Base):
    """A stored photo, addressed by its content hash: identical photos are kept once.

    ``pack`` and ``pack_offset`` say which pack file holds it and where its record starts;
    both are NULL for a photo stored as a file of its own (the layout before packs).
    """

    __tablename__ = "photos"
    __table_args__ = (Index("ix_photos_pack", "pack", "pack_offset"),)

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(8))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    pack: Mapped[str | None] = mapped_column(String(128), default=None)
    pack_offset: Mapped[int | None] = mapped_column(BigInteger, default=None)


class PhotoStoreRow(Base):
    """The photo store this database uses: its id (also written in the store) and where it
    is. One row; commands refuse a store whose id differs."""

    __tablename__ = "photo_stores"
    __table_args__ = (CheckConstraint("slot = 1", name="one_store"),)

    slot: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    """Always 1: the primary key makes the first binding win a race, and the only one."""
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    location: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IngestRun(Base):
    """One ``lizardctl ingest`` invocation and what came of it."""

    __tablename__ = "ingest_runs"
    __table_args__ = (
        CheckConstraint(one_of("status", RECORDED_RUN_STATUSES), name="status_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING)
    paths: Mapped[list[str]] = mapped_column(JSONType, default=list)
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None, index=True)
    shard: Mapped[str | None] = mapped_column(String(32), default=None)
    claim_lease_s: Mapped[float | None] = mapped_column(Float, default=None)
    """The run's ``--claim-lease``: on another host it counts as alive while its job's
    heartbeat is younger than this (NULL in runs older than the column: the default)."""


class IngestJob(Base):
    """Runs started on the same paths while one is alive share a job, and with it the work.

    ``key`` identifies the paths (and shard and filters). A run that finds the job dead
    (no heartbeat within a lease, finished, or last beaten by a process gone from this
    host) starts a new one, so tonight's run and a re-run after a crash start afresh.
    """

    __tablename__ = "ingest_jobs"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    heartbeat_at: Mapped[datetime] = mapped_column()
    worker: Mapped[str] = mapped_column(String(300))
    finished: Mapped[bool] = mapped_column(Boolean, default=False)


class Prune(Base):
    """A ``verify --prune`` deleting store files: ingest refuses to start while one is alive.

    Only while the prune runs; its process removes the row when done. A row left by a
    killed prune stops counting once its process is gone (same host) or its heartbeat is
    older than the stale window (other hosts).
    """

    __tablename__ = "prunes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    worker: Mapped[str] = mapped_column(String(300))
    started_at: Mapped[datetime] = mapped_column()
    heartbeat_at: Mapped[datetime] = mapped_column()


class IngestFolder(Base):
    """A folder some worker of a job has listed, and the number of parts it is cut into.

    The first worker to list the folder decides ``parts`` (about one batch of shots each);
    everyone else reads it back, so all workers agree on which stems form which part.
    ``path`` holds the folder's name as bytes: file names need not be UTF-8.
    """

    __tablename__ = "ingest_folders"

    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    folder: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[bytes] = mapped_column(LargeBinary)
    parts: Mapped[int] = mapped_column(Integer)


class IngestClaim(Base):
    """One part of a folder, claimed by one worker of a job: the others skip it, or take it
    over once the lease has expired and it is still not done. ``done`` commits with the
    part's cases and rejections. An unclaimed part has an empty ``worker``."""

    __tablename__ = "ingest_claims"
    __table_args__ = (Index("ix_ingest_claims_open", "job_id", "done"),)

    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    folder: Mapped[str] = mapped_column(String(64), primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker: Mapped[str] = mapped_column(String(300))
    lease_until: Mapped[datetime] = mapped_column()
    done: Mapped[bool] = mapped_column(Boolean, default=False)


UNPRICED = f"status = '{CaseStatus.CONFIRMED}' AND fine_minor IS NULL"
"""Confirmed cases without a frozen fine: few, and looked for at every catalog import."""


class Case(Base):
    """The canonical case made from one shot. One photo is evidence of one case: ``photo_key``
    (the photo's sha256, unique) makes concurrent runs insert it once; (photo, metadata)
    content stays unique too and is the cheap lookup that recognises re-runs."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("photo_sha256", "metadata_sha256"),
        Index("ix_cases_status_skill_occurred", "status", "required_skill", "occurred_at"),
        Index(
            "ix_cases_unpriced",
            "violation_id",
            sqlite_where=text(UNPRICED),
            postgresql_where=text(UNPRICED),
        ),
        CheckConstraint("skill >= 1 AND skill <= 100", name="skill_range"),
        CheckConstraint(one_of("status", CaseStatus), name="status_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    photo_sha256: Mapped[str] = mapped_column(ForeignKey("photos.sha256", ondelete="RESTRICT"))
    metadata_sha256: Mapped[str] = mapped_column(String(64))
    photo_key: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    """``photo_sha256`` on every case but the extra ones a database made before migration
    0006 for a photo that already had a case: those are kept, with NULL here."""
    camera_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cameras.id", ondelete="RESTRICT"), index=True
    )
    schema_version_id: Mapped[int] = mapped_column(
        ForeignKey("schema_versions.id", ondelete="RESTRICT")
    )
    run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="SET NULL"), index=True
    )
    plate: Mapped[str] = mapped_column(String(16), index=True)
    violation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    violation_value: Mapped[str] = mapped_column(String(64))
    skill: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    raw: Mapped[dict[str, Any]] = mapped_column()
    source_photo: Mapped[str] = mapped_column(Text)
    source_metadata: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN)
    required_skill: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    fine_minor: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """The catalog's fine when the case was confirmed, frozen there so re-importing the
    catalog never changes what a decided case owes; NULL: the violation was not catalogued
    then (``unknown violation``), or the case is not confirmed."""


class Rejection(Base):
    """A shot that did not become a case, with the reason code and a message a human can act on."""

    __tablename__ = "rejections"
    __table_args__ = (CheckConstraint(one_of("reason", Reason), name="reason_known"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="CASCADE"), index=True
    )
    photo_path: Mapped[str | None] = mapped_column(Text)
    metadata_path: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reviewer(Base):
    """A human reviewer ("lizard"): gets cases whose required skill equals their own. A
    supervisor also decides the cases split at the highest staffed level."""

    __tablename__ = "reviewers"
    __table_args__ = (CheckConstraint("skill >= 1 AND skill <= 100", name="skill_range"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    skill: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    supervisor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewSettings(Base):
    """The one row of review settings, seeded by the migration: operators tune them live."""

    __tablename__ = "review_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("votes_per_level >= 1", name="votes_positive"),
        CheckConstraint("lease_minutes >= 1", name="lease_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    votes_per_level: Mapped[int] = mapped_column(Integer)
    lease_minutes: Mapped[int] = mapped_column(Integer)


class Assignment(Base):
    """A lease of one case to one reviewer at one level; the vote, once cast, lands on it.

    The unique key makes "never the same case twice at a level" hold whatever the locking.
    """

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("case_id", "level", "reviewer_id"),
        CheckConstraint(one_of("verdict", Verdict), name="verdict_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    reviewer_id: Mapped[int] = mapped_column(
        ForeignKey("reviewers.id", ondelete="RESTRICT"), index=True
    )
    level: Mapped[int] = mapped_column(Integer)
    assigned_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    verdict: Mapped[str | None] = mapped_column(String(16), default=None)
    voted_at: Mapped[datetime | None] = mapped_column(default=None, index=True)


class CaseTransition(Base):
    """One change of a case's status or level, with when and why: the audit trail.
    ``actor`` and ``note`` are set when a person (a supervisor) made the change."""

    __tablename__ = "case_transitions"
    __table_args__ = (
        CheckConstraint(one_of("from_status", CaseStatus), name="from_status_known"),
        CheckConstraint(one_of("to_status", CaseStatus), name="to_status_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column()
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    from_level: Mapped[int] = mapped_column(Integer)
    to_level: Mapped[int] = mapped_column(Integer)
    cause: Mapped[str] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(64), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)


class ViolationType(Base):
    """One row of the managers' violation catalog. The fine is integer minor units
    (kopecks, cents): money is never a float, and sums stay exact on both engines."""

    __tablename__ = "violation_types"
    __table_args__ = (CheckConstraint("fine_minor >= 0", name="fine_not_negative"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    fine_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CarOwner(Base):
    """Who to reach about a plate: the managers' owners table, keyed by canonical plate."""

    __tablename__ = "car_owners"
    __table_args__ = (
        CheckConstraint(
            "phone IS NOT NULL OR email IS NOT NULL OR telegram IS NOT NULL", name="has_contact"
        ),
    )

    plate: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    telegram: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
