// Validate custom resources against the JSON schemas of the @kubernetes-models npm packages
// (offline; installed by `make deps` into .venv-crd-schemas, see mk/k8s.mk).
//
//   node validate_crds.mjs NODE_MODULES_DIR < objects.json
//
// stdin: a JSON array of Kubernetes objects. stdout: a JSON array, one entry per object:
// {"apiVersion", "kind", "name", "error"} where error is null when the object validates, and
// "no schema" when no installed package models its apiVersion/kind.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// API group -> npm package that models it.
const PACKAGES = {
  "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
  "gateway.envoyproxy.io": "@kubernetes-models/envoy-gateway",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

const root = process.argv[2];
const objects = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const obj of objects) {
  const [group, version] = obj.apiVersion.split("/");
  const result = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata?.name ?? null, error: null };
  const pkg = PACKAGES[group];
  const file = pkg && join(root, pkg, group, version, `${obj.kind}.js`);
  if (!file || !existsSync(file)) {
    result.error = "no schema";
  } else {
    const module = await import(pathToFileURL(file).href);
    try {
      new module[obj.kind](obj).validate();
    } catch (err) {
      result.error = String(err.message ?? err);
    }
  }
  results.push(result);
}
process.stdout.write(JSON.stringify(results));
