"""Pipeline plumbing: config loading and validation (config), atomic result files and
provenance (io), the job wrapper every rule's script runs in (snakejob), GPU slots
(gpuslots) and the SLURM clean-up (slurm). The science modules of igrm never need this
package except for writing files atomically (io)."""
