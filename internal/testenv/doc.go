// Package testenv is the home of the helpers that only tests use: the kinesalite launcher and
// its npm lock file (node/), the fault proxy, loopback STS and IMDS servers, and tmpfs mounts.
// Production code never imports anything below this directory; TestNoProductionImports
// enforces it, so a test helper can never be linked into the agent.
package testenv
