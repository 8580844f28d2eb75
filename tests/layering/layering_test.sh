#!/usr/bin/env bash
# The layering of src/ (README "Source layout"): each folder may include its own headers and those
# of the folders below it, never above; train and eval are siblings and include neither each other.
#   util <- text <- wordpiece <- data <- model <- run <- {train, eval} <- cli
# Usage: layering_test.sh SOURCE_DIR. Prints every offending include and exits 1 when there is one.
set -u
src="${1:?usage: layering_test.sh SOURCE_DIR}/src"
declare -A rank=([util]=0 [text]=1 [wordpiece]=2 [data]=3 [model]=4 [run]=5 [train]=6 [eval]=6 [cli]=7)
bad=0
for dir in "${!rank[@]}"; do
  [[ -d "$src/$dir" ]] || continue
  while IFS=: read -r file line text; do
    target=$(sed -E 's/.*#include "([a-z_]+)\/.*/\1/' <<<"$text")
    [[ -n "${rank[$target]+x}" ]] || continue
    if [[ "$target" != "$dir" && ${rank[$target]} -ge ${rank[$dir]} ]]; then
      echo "$file:$line: src/$dir includes src/$target (${text#*#include }), which is not below it" >&2
      bad=1
    fi
  done < <(grep -rnE '^\s*#include "[a-z_]+/' "$src/$dir" --include=*.h --include=*.cc)
done
[[ $bad == 0 ]] && echo "layering: every include points down"
exit $bad
