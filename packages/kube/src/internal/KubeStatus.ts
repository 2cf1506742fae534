/**
 * The `Status` objects a Kubernetes API server answers failures (and some deletions) with.
 */

/** A response of the dev API: an HTTP status and a JSON body. */
export interface ApiResponse {
  readonly status: number
  readonly body: unknown
}

/** A failed request, as a Kubernetes `Status` with its HTTP code. */
export const failure = (
  code: number,
  reason: string,
  message: string,
  details?: { readonly name?: string; readonly group?: string; readonly kind?: string }
): ApiResponse => ({
  status: code,
  body: {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details ? { details: { ...details } } : {}),
    code
  }
})

const groupDetail = (group: string) => (group === "" ? {} : { group })

/** 404 for an object that does not exist. */
export const notFound = (resource: string, group: string, name: string): ApiResponse =>
  failure(404, "NotFound", `${qualified(resource, group)} "${name}" not found`, {
    name,
    ...groupDetail(group),
    kind: resource
  })

/** 404 for a path the server does not serve. */
export const unknownPath = (): ApiResponse =>
  failure(404, "NotFound", "the server could not find the requested resource")

/** 409 for a create that names an object that exists. */
export const alreadyExists = (resource: string, group: string, name: string): ApiResponse =>
  failure(409, "AlreadyExists", `${qualified(resource, group)} "${name}" already exists`, {
    name,
    ...groupDetail(group),
    kind: resource
  })

/** 409 for an update whose resourceVersion is stale. */
export const conflict = (resource: string, group: string, name: string): ApiResponse =>
  failure(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualified(resource, group)} "${name}": the object has been modified; ` +
      "please apply your changes to the latest version and try again",
    { name, ...groupDetail(group), kind: resource }
  )

/** 401 for a request without a token the server accepts. */
export const unauthorized = (): ApiResponse => failure(401, "Unauthorized", "Unauthorized")

/** 403 for a request the authenticated user may not make. */
export const forbidden = (
  user: string,
  verb: string,
  resource: string,
  group: string,
  namespace: string | undefined,
  name: string | undefined
): ApiResponse => {
  const subject = name === undefined ? qualified(resource, group) : `${qualified(resource, group)} "${name}"`
  const scope = namespace === undefined ? "at the cluster scope" : `in the namespace "${namespace}"`
  return failure(
    403,
    "Forbidden",
    `${subject} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${group}" ${scope}`,
    { ...(name === undefined ? {} : { name }), ...groupDetail(group), kind: resource }
  )
}

/** 400 for a body the server cannot use. */
export const badRequest = (message: string): ApiResponse => failure(400, "BadRequest", message)

/** 422 for an object that fails validation. */
export const invalid = (kind: string, group: string, name: string, field: string, problem: string): ApiResponse => ({
  status: 422,
  body: {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: `${kind} "${name}" is invalid: ${field}: ${problem}`,
    reason: "Invalid",
    details: { name, ...groupDetail(group), kind, causes: [{ reason: "FieldValueInvalid", message: problem, field }] },
    code: 422
  }
})

/** 405 for a method a path does not allow. */
export const methodNotAllowed = (): ApiResponse =>
  failure(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

/** 415 for a patch type the server does not take. */
export const unsupportedMediaType = (contentType: string): ApiResponse =>
  failure(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format (${contentType}); accepted media types: application/json, ` +
      "application/merge-patch+json, application/strategic-merge-patch+json, application/json-patch+json"
  )

/** 200 `Status` a deletion of a namespaced object answers with. */
export const deleted = (resource: string, group: string, name: string, uid: string): ApiResponse => ({
  status: 200,
  body: {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Success",
    details: { name, ...groupDetail(group), kind: resource, uid }
  }
})

const qualified = (resource: string, group: string) => (group === "" ? resource : `${resource}.${group}`)
