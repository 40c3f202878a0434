#!/bin/sh
# Example post-docker hook: append every docker call dpe makes, with its status, to an audit
# log in dpe's state dir. Post hooks always run, also after a failed call or Ctrl+C;
# DPE_DOCKER_STATUS is docker's exit status (128+N when signal N ended it).
log="${DPE_STATE_DIR:?}/docker-audit.log"
mkdir -p "$(dirname "$log")"
printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${DPE_PROJECT:--}" \
  "$DPE_DOCKER_VERB" "$DPE_DOCKER_STATUS" "$DPE_DOCKER_ARGV" >> "$log"
