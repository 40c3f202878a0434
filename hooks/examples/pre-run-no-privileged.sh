#!/bin/sh
# Example pre-run hook: refuse privileged containers.
# Install: copy to ~/.config/dpe/hooks/pre-run.sh (all your workspaces) or to a workspace's
# hooks/pre-run.sh (then `dpe trust` there). A non-zero exit aborts: docker is not called.
# DPE_DOCKER_ARGV holds the docker arguments as a JSON array.
case "$DPE_DOCKER_ARGV" in
  *'"--privileged"'*)
    echo "pre-run: privileged containers are not allowed for project ${DPE_PROJECT:-?}" >&2
    exit 1
    ;;
esac
exit 0
