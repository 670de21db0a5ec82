"""Runs the encoder-transfer grid (Tables 2-3, Figs. 5-6 of Movement Pruning) as many single-run
processes at once, for a machine with many cores (each TF.js process drives one core, wasm or
WebGPU alike). Dense runs come first and save their models as the distillation teachers; a
distillation run starts once its seed's teacher exists. Runs that cannot finish before the
deadline are not started; those still running at the deadline are stopped (their results are
lost, the finished ones are kept: every process writes its JSON when its run ends).

    python3 bench/python/transfer_grid.py --run "node bench/dist-bundle/run.mjs" \
        --data .cache/encoder-data.safetensors --pretrained bench/pretrained/encoder-small \
        --task brown --slots 14 --deadline 480

Results: $FINEPRUNE_BENCH_RESULTS/<prefix>-<task>-<run>.json (`--prefix`, default encoder-gpu), merged
by `pnpm encoder-transfer-tables --prefix encoder-gpu --task <task name>`.

`--plan FILE` replaces the generated grid with an ordered list of runs, one per line:

    <task> <phase> <method> <target> <seed> [lambda]

with task brown or spam, phase dense, local, kd or global, and lambda the regulariser of SMvP or L0
(its run is then named <method>-lam<lambda>-<target>-<phase>-s<seed>, so runs at another lambda are
kept beside it). Runs start in the file's order as slots free up; a kd run waits for its teacher.
"""

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time


def jobs_for(args):
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = ["MaP", "MvP", "SMvP", "L0"]
    targets = [float(t) for t in args.remaining.split(",")]
    jobs = []
    for seed in seeds:
        jobs.append({"name": f"dense-s{seed}", "methods": "dense", "remaining": "1", "distil": "no",
                     "scope": "local", "seed": seed, "teacher": "save"})
    for phase in args.phases.split(","):
        for target in targets:
            for method in methods:
                for seed in seeds:
                    if phase == "local":
                        jobs.append({"name": f"{method}-{target}-local-s{seed}", "methods": method,
                                     "remaining": str(target), "distil": "no", "scope": "local", "seed": seed})
                    elif phase == "kd":
                        jobs.append({"name": f"{method}-{target}-kd-s{seed}", "methods": method,
                                     "remaining": str(target), "distil": "yes", "scope": "local", "seed": seed,
                                     "teacher": "load"})
                    elif phase == "global" and method in ("MaP", "MvP"):
                        jobs.append({"name": f"{method}-{target}-global-s{seed}", "methods": method,
                                     "remaining": str(target), "distil": "no", "scope": "global", "seed": seed})
    return jobs


def jobs_from_plan(path):
    jobs = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split("#")[0].split()
            if not fields:
                continue
            if len(fields) not in (5, 6):
                raise SystemExit(f"{path}:{number}: expected <task> <phase> <method> <target> <seed> [lambda]")
            task, phase, method, target, seed = fields[:5]
            lam = fields[5] if len(fields) == 6 else None
            if task not in ("brown", "spam") or phase not in ("dense", "local", "kd", "global"):
                raise SystemExit(f"{path}:{number}: unknown task {task!r} or phase {phase!r}")
            if lam is not None and method not in ("SMvP", "L0"):
                raise SystemExit(f"{path}:{number}: only SMvP and L0 take a lambda")
            seed = int(seed)
            if phase == "dense":
                jobs.append({"task": task, "name": f"dense-s{seed}", "methods": "dense", "remaining": "1",
                             "distil": "no", "scope": "local", "seed": seed, "teacher": "save"})
                continue
            name = f"{method}-lam{float(lam):g}" if lam is not None else method
            job = {"task": task, "name": f"{name}-{float(target):g}-{phase}-s{seed}", "methods": method,
                   "remaining": str(float(target)), "distil": "yes" if phase == "kd" else "no",
                   "scope": "global" if phase == "global" else "local", "seed": seed}
            if phase == "kd":
                job["teacher"] = "load"
            if lam is not None:
                option = "--smvpLambda" if method == "SMvP" else "--l0Lambda"
                job["extra"] = [option, f"{float(target)}:{lam}"]
            jobs.append(job)
    return jobs


def teachers_dir(args, job):
    # Each task's teachers live apart when a plan mixes tasks.
    return os.path.join(args.teachers, job["task"]) if args.plan else args.teachers


def dev_examples(args, task):
    # "527" for every task, or "brown=527,spam=0" per task (0: the whole dev split).
    if "=" not in args.dev_examples:
        return args.dev_examples
    per_task = dict(pair.split("=") for pair in args.dev_examples.split(","))
    return per_task.get(task, "0")


def command(args, job):
    task = job.get("task", args.task)
    task_name = "spam-assassin" if task == "spam" else "brown-genre"
    parts = shlex.split(args.run) + [
        "encoderTransfer", "--backend", args.backend, "--data", args.data, "--pretrained", args.pretrained,
        "--task", task, "--seeds", str(job["seed"]), "--methods", job["methods"],
        "--remaining", job["remaining"], "--distil", job["distil"], "--scopes", job["scope"],
        "--steps", str(args.steps), "--batch", str(args.batch), "--devExamples", dev_examples(args, task),
        "--output", f"{args.prefix}-{task_name}-{job['output']}",
    ] + args.extra.split() + job.get("extra", [])
    if job.get("teacher") == "save":
        parts += ["--saveTeachers", teachers_dir(args, job)]
    elif job.get("teacher") == "load":
        parts += ["--teachers", teachers_dir(args, job)]
    return parts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", required=True, help="the command that runs one bench script")
    parser.add_argument("--data", required=True)
    parser.add_argument("--pretrained", required=True)
    parser.add_argument("--task", default="brown")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--remaining", default="0.1,0.03")
    parser.add_argument("--phases", default="local,kd,global")
    parser.add_argument("--backend", default="webgpu")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dev-examples", default="0", help='"527", or per task "brown=527,spam=0"')
    parser.add_argument("--teachers", default="/tmp/teachers")
    parser.add_argument("--slots", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--deadline", type=float, default=540, help="seconds from now")
    parser.add_argument("--skip", default="", help="comma-separated job names already done")
    parser.add_argument("--extra", default="", help="more encoder-transfer arguments")
    parser.add_argument("--logs", default="/tmp/grid-logs")
    parser.add_argument("--plan", default="", help="a file of runs to do in order (see the module's text)")
    parser.add_argument("--prefix", default="encoder-gpu", help="result files: <prefix>-<task>-<run>.json")
    args = parser.parse_args()

    start = time.time()
    deadline = start + args.deadline
    os.makedirs(args.logs, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    planned = jobs_from_plan(args.plan) if args.plan else jobs_for(args)
    for job in planned:
        job["output"] = job["name"]
        if args.plan:
            job["name"] = f"{job['task']}-{job['name']}"
    pending = [job for job in planned if job["name"] not in skip]
    running = {}
    durations = []
    finished, failed, not_started = [], [], []

    def ready(job):
        if job.get("teacher") != "load":
            return True
        return os.path.exists(os.path.join(teachers_dir(args, job), f"seed-{job['seed']}", "model.safetensors"))

    while pending or running:
        for name, (process, job, began, log) in list(running.items()):
            code = process.poll()
            if code is None:
                continue
            log.close()
            del running[name]
            took = time.time() - began
            (finished if code == 0 else failed).append(name)
            if code == 0:
                durations.append(took)
            print(f"[{time.time() - start:5.0f}s] {'done' if code == 0 else f'FAILED ({code})'} {name} in {took:.0f}s",
                  flush=True)
            if code != 0:
                with open(os.path.join(args.logs, f"{name}.log")) as f:
                    print("".join(f.readlines()[-15:]), flush=True)
        expected = statistics.median(durations) if durations else 0
        while len(running) < args.slots and pending:
            job = next((job for job in pending if ready(job)), None)
            if job is None:
                break
            if time.time() + expected * 1.1 > deadline:
                not_started.extend(j["name"] for j in pending)
                pending = []
                break
            pending.remove(job)
            log = open(os.path.join(args.logs, f"{job['name']}.log"), "w")
            process = subprocess.Popen(command(args, job), stdout=log, stderr=subprocess.STDOUT)
            running[job["name"]] = (process, job, time.time(), log)
            print(f"[{time.time() - start:5.0f}s] start {job['name']}", flush=True)
        if time.time() > deadline:
            for name, (process, job, began, log) in running.items():
                process.kill()
                not_started.append(name)
                print(f"[{time.time() - start:5.0f}s] stopped at the deadline: {name}", flush=True)
            running = {}
            not_started.extend(j["name"] for j in pending)
            pending = []
        if not running and pending and not any(ready(job) for job in pending):
            print("waiting on teachers that no running job will write: " + ", ".join(j["name"] for j in pending))
            not_started.extend(j["name"] for j in pending)
            break
        time.sleep(1)
    print(f"finished {len(finished)}, failed {len(failed)}: {','.join(failed)}")
    print(f"not run: {','.join(not_started)}")
    if durations:
        print(f"median job {statistics.median(durations):.0f}s over {len(durations)} jobs; wall {time.time() - start:.0f}s")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
