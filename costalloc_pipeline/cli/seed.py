"""`costalloc seed`: add a synthetic repository (projects, folders, files, handles, objects)."""

from __future__ import annotations

import argparse

from costalloc_pipeline.errors import BadRequest
from costalloc_pipeline.naming import format_entity_id
from costalloc_pipeline.runtime import resolve_settings
from costalloc_pipeline.seed import SeedReport, SeedSpec, seed_repository

DEFAULTS = SeedSpec()


def spec_from_args(args: argparse.Namespace) -> SeedSpec:
    files_per_folder = args.files_per_folder
    if args.files_per_project is not None:
        if args.folders_per_project <= 0 or args.files_per_project % args.folders_per_project:
            raise BadRequest(
                f"--files-per-project {args.files_per_project} is not a multiple of "
                f"--folders-per-project {args.folders_per_project}"
            )
        files_per_folder = args.files_per_project // args.folders_per_project
    return SeedSpec(
        projects=args.projects,
        folders_per_project=args.folders_per_project,
        files_per_folder=files_per_folder,
        versions_per_file=args.versions,
        preview_share=args.preview_share,
        shared_within_project=args.shared_within_project,
        shared_across_projects=args.shared_across_projects,
        same_key_pairs=args.same_key_pairs,
        external_share=args.external_share,
        min_size=args.min_size,
        max_size=args.max_size,
        upload_objects=args.objects,
        upload_concurrency=args.upload_concurrency,
        random_seed=args.seed,
        id_offset=args.id_offset,
    )


def summary(report: SeedReport) -> list[str]:
    lines = [
        f"projects created: {len(report.project_ids)} ({', '.join(map(format_entity_id, report.project_ids))})",
        f"entities: {report.nodes} ({report.folders} folders, {report.file_entities} files, "
        f"{report.revisions} versions)",
        f"file handles: {report.handles} ({len(report.preview_handle_ids)} previews, "
        f"{len(report.external_handle_ids)} external)",
        f"special cases: {len(report.shared_within_project)} handles shared within a project, "
        f"{len(report.shared_across_projects)} across projects, {len(report.same_key_pairs)} same-key pairs",
        f"objects uploaded: {report.objects}, {report.object_bytes} bytes "
        f"(to {report.default_bucket} and {report.external_bucket})",
        f"took {report.seconds:.1f} s",
    ]
    if report.admin_token is not None:
        lines.append(f"this seed initialised the stack; admin token (shown once): {report.admin_token}")
    return lines


def run_seed(args: argparse.Namespace) -> int:
    # Validate before resolve_settings, which may start the embedded S3.
    spec = spec_from_args(args)
    spec.validate()
    report = seed_repository(resolve_settings(), spec)
    print("\n".join(summary(report)))
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "seed",
        help="add a synthetic repository for demos, tests and benchmarks",
        description=(
            "Adds projects, folders and file entities with several versions each, file handles "
            "(previews, handles shared by entities of one project and of two projects, pairs of "
            "handles on one bucket and key, external handles) and, unless --no-objects, uploads "
            "their objects to the default bucket. Ids start above those already present, so "
            "seeding again adds a second repository beside the first. The same --seed gives the "
            "same repository again, at new ids."
        ),
    )
    parser.add_argument(
        "--projects", type=int, metavar="N", default=DEFAULTS.projects, help="projects to create (default %(default)s)"
    )
    parser.add_argument(
        "--folders-per-project",
        type=int,
        metavar="N",
        default=DEFAULTS.folders_per_project,
        help="folders in each project (default %(default)s)",
    )
    files = parser.add_mutually_exclusive_group()
    files.add_argument(
        "--files-per-folder",
        type=int,
        metavar="N",
        default=DEFAULTS.files_per_folder,
        help="file entities in each folder (default %(default)s)",
    )
    files.add_argument(
        "--files-per-project",
        type=int,
        metavar="N",
        help="file entities in each project, spread evenly over its folders (a multiple of --folders-per-project)",
    )
    parser.add_argument(
        "--versions",
        type=int,
        metavar="N",
        default=DEFAULTS.versions_per_file,
        help="versions of each file entity (default %(default)s)",
    )
    parser.add_argument(
        "--preview-share",
        type=float,
        metavar="SHARE",
        default=DEFAULTS.preview_share,
        help="share of handles in the default bucket that get a preview, 0 to 1 (default %(default)s)",
    )
    parser.add_argument(
        "--external-share",
        type=float,
        metavar="SHARE",
        default=DEFAULTS.external_share,
        help="share of handles outside repository-managed storage, 0 to 1 (default %(default)s)",
    )
    parser.add_argument(
        "--shared-within-project",
        type=int,
        metavar="N",
        default=DEFAULTS.shared_within_project,
        help="per project: handles referenced by versions of two of its entities (default %(default)s)",
    )
    parser.add_argument(
        "--shared-across-projects",
        type=int,
        metavar="N",
        default=DEFAULTS.shared_across_projects,
        help="per project after the first: handles of the previous project referenced by one of its "
        "entities (default %(default)s)",
    )
    parser.add_argument(
        "--same-key-pairs",
        type=int,
        metavar="N",
        default=DEFAULTS.same_key_pairs,
        help="per project: pairs of distinct handles on one bucket and key (default %(default)s)",
    )
    parser.add_argument(
        "--min-size",
        type=int,
        metavar="BYTES",
        default=DEFAULTS.min_size,
        help="smallest object (default %(default)s)",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        metavar="BYTES",
        default=DEFAULTS.max_size,
        help="largest object (default %(default)s)",
    )
    parser.add_argument(
        "--no-objects",
        dest="objects",
        action="store_false",
        help="write rows only, upload no objects (for large benchmarks; handles then point at nothing)",
    )
    parser.add_argument(
        "--upload-concurrency",
        type=int,
        metavar="N",
        default=DEFAULTS.upload_concurrency,
        help="parallel uploads (default %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, metavar="N", default=DEFAULTS.random_seed, help="random seed (default %(default)s)"
    )
    parser.add_argument(
        "--id-offset",
        type=int,
        metavar="N",
        default=None,
        help="first entity and handle ids are this plus one (default: above the ids already present)",
    )
    parser.set_defaults(handler=run_seed)
