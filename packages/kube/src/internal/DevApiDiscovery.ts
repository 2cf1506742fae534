/**
 * The Kubernetes dev API's discovery documents: API versions, groups and resource lists, `/version`, and the
 * service-account issuer's OpenID documents.
 */
import { resources } from "./DevApiResources.ts"
import type { DevApiState } from "./DevApiState.ts"
import { authenticationGroup, authorizationGroup, ok } from "./DevApiState.ts"
import type { ApiResponse } from "./KubeStatus.ts"

/** The Kubernetes release whose API the dev API follows. */
export const serverVersion = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.0-cloudtaser-dev",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: "go1.23.0",
  compiler: "gc",
  platform: "linux/amd64"
}

const groupVersions = (): Array<{ readonly group: string; readonly version: string }> => {
  const seen = new Map<string, { group: string; version: string }>()
  for (const spec of resources) {
    if (spec.group !== "") seen.set(`${spec.group}/${spec.version}`, { group: spec.group, version: spec.version })
  }
  seen.set(`${authenticationGroup}/v1`, { group: authenticationGroup, version: "v1" })
  seen.set(`${authorizationGroup}/v1`, { group: authorizationGroup, version: "v1" })
  return Array.from(seen.values()).sort((a, b) => a.group.localeCompare(b.group))
}

const apiGroup = (group: string) => {
  const versions = groupVersions().filter((entry) => entry.group === group).map((entry) => ({
    groupVersion: `${group}/${entry.version}`,
    version: entry.version
  }))
  return versions.length === 0 ? undefined : { name: group, versions, preferredVersion: versions[0] }
}

const resourceList = (group: string, version: string) => {
  const groupVersion = group === "" ? version : `${group}/${version}`
  const listed: Array<Record<string, unknown>> = resources
    .filter((spec) => spec.group === group && spec.version === version)
    .map((spec) => ({
      name: spec.resource,
      singularName: spec.singular,
      namespaced: spec.namespaced,
      kind: spec.kind,
      verbs: spec.verbs,
      ...(spec.shortNames.length > 0 ? { shortNames: spec.shortNames } : {})
    }))
  if (group === "" && version === "v1") {
    listed.push({
      name: "serviceaccounts/token",
      singularName: "",
      namespaced: true,
      group: authenticationGroup,
      version: "v1",
      kind: "TokenRequest",
      verbs: ["create"]
    })
  }
  if (group === authenticationGroup && version === "v1") {
    listed.push(
      { name: "tokenreviews", singularName: "tokenreview", namespaced: false, kind: "TokenReview", verbs: ["create"] },
      {
        name: "selfsubjectreviews",
        singularName: "selfsubjectreview",
        namespaced: false,
        kind: "SelfSubjectReview",
        verbs: ["create"]
      }
    )
  }
  if (group === authorizationGroup && version === "v1") {
    listed.push({
      name: "selfsubjectaccessreviews",
      singularName: "selfsubjectaccessreview",
      namespaced: false,
      kind: "SelfSubjectAccessReview",
      verbs: ["create"]
    })
  }
  if (listed.length === 0) return undefined
  listed.sort((a, b) => String(a.name).localeCompare(String(b.name)))
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion, resources: listed }
}

/** The discovery document at a path, if it is one. */
export const discovery = (state: DevApiState, segments: ReadonlyArray<string>): ApiResponse | undefined => {
  const path = segments.join("/")
  if (path === "version") return ok(serverVersion)
  if (path === "api") {
    return ok({
      kind: "APIVersions",
      versions: ["v1"],
      serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: state.serverAddress }]
    })
  }
  if (path === "apis") {
    const groups = Array.from(new Set(groupVersions().map((entry) => entry.group))).map(apiGroup)
    return ok({ kind: "APIGroupList", apiVersion: "v1", groups })
  }
  if (segments[0] === "apis" && segments.length === 2) {
    const group = apiGroup(segments[1]!)
    return group === undefined ? undefined : ok({ kind: "APIGroup", apiVersion: "v1", ...group })
  }
  if (path === "api/v1") return ok(resourceList("", "v1"))
  if (segments[0] === "apis" && segments.length === 3) {
    const list = resourceList(segments[1]!, segments[2]!)
    return list === undefined ? undefined : ok(list)
  }
  if (path === ".well-known/openid-configuration") {
    return ok({
      issuer: state.authority.issuer,
      jwks_uri: `https://${state.serverAddress}/openid/v1/jwks`,
      response_types_supported: ["id_token"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: ["ES256"]
    })
  }
  if (path === "openid/v1/jwks") return ok({ keys: [state.authority.publicJwk] })
  if (path === "healthz" || path === "livez" || path === "readyz") return ok("ok")
  return undefined
}
