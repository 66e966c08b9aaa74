//! The scripts that run an export's runs in plan order: `launch.sh` on one machine,
//! `launch-cluster.sh` on every node of a cluster (`torchrun --nnodes`, c10d rendezvous), and
//! `launch.sbatch`, which starts the latter on each node of a Slurm allocation. A run that
//! finished leaves `DONE` in its directory and is skipped when a script is started again; an
//! interrupted run continues from the checkpoint in its own folder (the driver says how).

use std::path::PathBuf;

use super::run_dir;
use crate::runs::Lowering;

fn each_run(l: &Lowering, torchrun: &str) -> String {
    let mut s = String::new();
    for (i, r) in l.runs.iter().enumerate() {
        let dir = run_dir(i, r);
        s += &format!(
            "# {} ({} steps of {} x {} tokens, stage `{}`)\n\
             if [ ! -e {dir}/DONE ]; then\n  {torchrun} driver.py {dir}/config.json\n  \
             touch {dir}/DONE\nfi\n",
            r.name, r.steps, r.batch, r.seq_len, r.stage
        );
    }
    s
}

const HEAD: &str = "#!/usr/bin/env bash\n\
    # Written by `pipe export --engine olmo-core`: the runs of the plan in order. Each run's\n\
    # config is in runs/NN-NAME/config.json; its token files are expected under data/\n\
    # (`pipe prepare-data FILE --format olmo-core --out data`).\n\
    set -euo pipefail\ncd \"$(dirname \"$0\")\"\n";

pub fn scripts(l: &Lowering) -> Vec<(PathBuf, String)> {
    let local = format!(
        "{HEAD}TORCHRUN=${{TORCHRUN:-torchrun}}\nNPROC=${{NPROC:-1}}\n\n{}",
        each_run(l, "\"$TORCHRUN\" --standalone --nproc-per-node \"$NPROC\"")
    );
    let cluster = format!(
        "{HEAD}# Start on every node with the same MASTER_ADDR; NODE_RANK differs per node.\n\
         TORCHRUN=${{TORCHRUN:-torchrun}}\nNNODES=${{NNODES:?set NNODES}}\n\
         NODE_RANK=${{NODE_RANK:?set NODE_RANK}}\nNPROC=${{NPROC:-8}}\n\
         MASTER_ADDR=${{MASTER_ADDR:?set MASTER_ADDR}}\nMASTER_PORT=${{MASTER_PORT:-29500}}\n\n{}",
        each_run(
            l,
            "\"$TORCHRUN\" --nnodes \"$NNODES\" --node-rank \"$NODE_RANK\" --nproc-per-node \
             \"$NPROC\" --rdzv-id \"pipelang-$MASTER_PORT\" --rdzv-backend c10d --rdzv-endpoint \
             \"$MASTER_ADDR:$MASTER_PORT\"",
        )
        .replace("  touch ", "  [ \"$NODE_RANK\" != 0 ] || touch ")
    );
    let sbatch = format!(
        "#!/usr/bin/env bash\n\
         #SBATCH --job-name={name}\n#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n\
         #SBATCH --gpus-per-node=8\n#SBATCH --exclusive\n\
         # Written by `pipe export --engine olmo-core`: one task per node runs launch-cluster.sh,\n\
         # which runs every run of the plan in order through torchrun. Change the #SBATCH lines\n\
         # to your cluster; the export directory must be on a file system every node sees.\n\
         set -euo pipefail\n\
         export NNODES=$SLURM_JOB_NUM_NODES\n\
         export NPROC=${{NPROC:-${{SLURM_GPUS_PER_NODE:-8}}}}\n\
         export MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\n\
         export MASTER_PORT=${{MASTER_PORT:-29500}}\n\
         srun --kill-on-bad-exit=1 bash -c 'NODE_RANK=$SLURM_NODEID exec \"{dir}/launch-cluster.sh\"'\n",
        name = l.pipeline,
        dir = "${SLURM_SUBMIT_DIR}",
    );
    vec![
        (PathBuf::from("launch.sh"), local),
        (PathBuf::from("launch-cluster.sh"), cluster),
        (PathBuf::from("launch.sbatch"), sbatch),
    ]
}
