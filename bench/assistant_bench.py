"""The assistant's own answer time, per retrieval method: p50/p99 ms and CPU ms per answer.

    .venv/bin/python bench/assistant_bench.py [--rounds 3]

A fixed mix of 50 recruiters' questions (skills the packaged catalog's owner
has, ones close to them, ones absent, a few long or odd) is answered
``--rounds`` times by :class:`cv_analytics.assistant.Assistant` over the
packaged catalog, with no LLM (the composed answer: what the assistant itself
costs), for each retrieval method installed side by side in one process:
with the cache off (every answer retrieves) and on (the first round misses,
the later ones hit). CPU time is the process's (``time.process_time``, every
thread: torch may use several), divided by the answers; wall time per answer
includes waiting for a core on a shared machine. Also: the time to build each
retriever (the embedding model's load and the catalog's vectors), and
``match_job_description`` on a realistic job description. The load average
is recorded before and after.

Writes bench/results/assistant.json and bench/results/assistant_bench.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import RESULTS, machine, median, percentile, table, write_result  # noqa: E402

QUESTIONS = [
    # skills the owner has, as recruiters ask
    "What is your experience with TypeScript?", "k8s?", "Do you know Python?", "How many years of AWS?",
    "Tell me about your Kafka work", "Have you used Postgres in production?", "Redis?", "Terraform experience?",
    "Can you lead a team?", "Do you speak German?", "Experience with machine learning models?", "FastAPI or Django?",
    "Have you built REST APIs?", "Do you write tests?", "What about Docker and Kubernetes?", "Golang?",
    "Any experience with DynamoDB and SQS?", "React frontends?", "Do you know Linux well?", "GitHub Actions?",
    "Have you worked on distributed systems?", "Observability: Prometheus, Grafana?", "Are you comfortable with SQL?",
    "LLMs and RAG?", "Have you worked remotely?", "Airflow pipelines?", "Node.js and Express?", "Helm charts?",
    "CloudFormation or CDK?", "System design interviews: how do you approach architecture?",
    # close to a skill, or several at once
    "Have you worked with container orchestration?", "Event streaming at scale?", "Message queues?",
    "Infrastructure as code?", "Serverless functions?", "Python and Rust?", "Data engineering and ETL?",
    "Monitoring and alerting?", "Which cloud providers have you used?", "Backend development in general?",
    # not in the CV
    "What about Zig?", "Salesforce experience?", "Are you familiar with Java?", "Do you know Haskell?",
    "iOS development with Swift?", "PHP and Laravel?", "Tell me about your cooking",
    # long and odd
    "I am hiring for a platform team that runs Kubernetes on AWS with Terraform, Kafka and PostgreSQL; "
    "we also value mentoring and clear writing. How much of that have you done, and for how long? " * 3,
    "<script>alert('hi')</script> Python?", "Pythön 🐍 と Kubernetes の経験は?",
]
JOB_DESCRIPTION = """Senior Backend Engineer (Payments). We are looking for a senior engineer to join our platform team.
Requirements:
- 5+ years of Python or Go in production
- Strong PostgreSQL and Redis skills
- Experience with Kubernetes (EKS) and Terraform; Pulumi is a plus
- Event streaming with Kafka or RabbitMQ
- CI/CD with GitHub Actions or Jenkins
- Familiarity with Java or Kotlin microservices
Nice to have: Rust, GraphQL, PCI DSS, Spanish.
"""


def run_answers(assistant, rounds: int) -> dict[str, object]:
    walls: list[float] = []
    hits = 0
    cpu_started = time.process_time()
    for _ in range(rounds):
        for question in QUESTIONS:
            started = time.perf_counter()
            result = assistant.answer(question)
            walls.append((time.perf_counter() - started) * 1000)
            hits += result.cache_hit
    cpu = time.process_time() - cpu_started
    return {
        "answers": len(walls),
        "p50_ms": round(median(walls), 3),
        "p99_ms": round(percentile(walls, 99), 3),
        "cpu_ms_per_answer": round(cpu * 1000 / len(walls), 3),
        "cache_hits": hits,
    }


def run_match(catalog, retriever, runs: int = 5) -> dict[str, float]:
    from cv_analytics.assistant import match_job_description

    match_job_description(catalog, retriever, JOB_DESCRIPTION)  # warm up (the vocabulary loads once)
    walls = []
    cpu_started = time.process_time()
    for _ in range(runs):
        started = time.perf_counter()
        match_job_description(catalog, retriever, JOB_DESCRIPTION)
        walls.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(median(walls), 2), "cpu_ms_per_match": round((time.process_time() - cpu_started) * 1000 / runs, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from cv_analytics.assistant import Assistant, embedding_available, open_retriever
    from cv_analytics.skills import load_catalog

    catalog = load_catalog()
    load_before = os.getloadavg()
    started = time.perf_counter()
    available = embedding_available()  # imports torch and sentence-transformers: the first cost of the [ai] extra
    import_s = round(time.perf_counter() - started, 2)
    methods = ["bm25"] + (["embedding"] if available else [])
    results: dict[str, object] = {"machine": machine(), "questions": len(QUESTIONS), "rounds": args.rounds, "methods": {}}
    if available:
        results["embedding_import_s"] = import_s
    for method in methods:
        started, cpu_started = time.perf_counter(), time.process_time()
        retriever = open_retriever(catalog, method)
        build = {"wall_s": round(time.perf_counter() - started, 2), "cpu_s": round(time.process_time() - cpu_started, 2)}
        for question in QUESTIONS[:3]:  # warm up (first calls allocate)
            retriever.search(question)
        entry: dict[str, object] = {"build": build}
        entry["cache_off"] = run_answers(Assistant(catalog, retriever, cache_size=0), args.rounds)
        entry["cache_on"] = run_answers(Assistant(catalog, retriever, cache_size=256), args.rounds)
        entry["match_job_description"] = run_match(catalog, retriever)
        if method == "embedding":
            import torch

            entry["torch_threads"] = torch.get_num_threads()
        results["methods"][method] = entry  # type: ignore[index]
    results["load_average_before"] = [round(x, 2) for x in load_before]
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "assistant.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    rows = []
    for method, entry in results["methods"].items():  # type: ignore[union-attr]
        for cache in ("cache_off", "cache_on"):
            r = entry[cache]
            rows.append([method, cache.replace("_", " "), r["answers"], r["p50_ms"], r["p99_ms"], r["cpu_ms_per_answer"], r["cache_hits"]])
    match_rows = [
        [m, e["build"]["wall_s"], e["build"]["cpu_s"], e["match_job_description"]["p50_ms"], e["match_job_description"]["cpu_ms_per_match"]]
        for m, e in results["methods"].items()  # type: ignore[union-attr]
    ]
    markdown = "\n\n".join(
        [
            "# Assistant answer time",
            f"{machine()}; `bench/assistant_bench.py --rounds {args.rounds}`: {len(QUESTIONS)} questions × "
            f"{args.rounds} rounds over the packaged catalog, composed answers (no LLM). Load average "
            f"{results['load_average_before']} before, {results['load_average_after']} after."
            + (f" Importing torch and sentence-transformers took {import_s} s first." if available else ""),
            table(["retrieval", "cache", "answers", "p50 ms", "p99 ms", "CPU ms/answer", "cache hits"], rows),
            table(["retrieval", "build s (wall)", "build s (CPU)", "cv.match p50 ms", "cv.match CPU ms"], match_rows),
        ]
    )
    write_result("assistant_bench", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
