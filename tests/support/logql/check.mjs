// Parses each LogQL query given as a JSON array on stdin with Grafana's LogQL grammar
// (@grafana/lezer-logql) and prints, as JSON, the offsets of any syntax errors per query.
import { parser } from "@grafana/lezer-logql";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map((query) => {
  const errors = [];
  parser.parse(query).iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(node.from);
    },
  });
  return { query, errors };
});
process.stdout.write(JSON.stringify(results));
