// Parses each LogQL query given as a JSON array on stdin with Grafana's LogQL grammar
// (@grafana/lezer-logql) and prints, as JSON, per query: the offsets of any syntax errors,
// the label names its stream selectors match on ({name="..."}), and each stream selector's
// matchers as [name, operator, quoted value].
import { parser } from "@grafana/lezer-logql";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map((query) => {
  const errors = [];
  const labels = new Set();
  const selectors = [];
  let selectorEnd = -1;
  parser.parse(query).iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(node.from);
      if (node.type.name === "Selector") {
        selectorEnd = node.to;
        selectors.push([]);
      }
      if (node.type.name === "Identifier" && node.from < selectorEnd) {
        labels.add(query.slice(node.from, node.to));
      }
      if (node.type.name === "Matcher" && node.from < selectorEnd) {
        const parts = [];
        for (let child = node.node.firstChild; child; child = child.nextSibling) {
          parts.push(query.slice(child.from, child.to));
        }
        selectors[selectors.length - 1].push(parts);
      }
    },
  });
  return { query, errors, labels: [...labels].sort(), selectors };
});
process.stdout.write(JSON.stringify(results));
