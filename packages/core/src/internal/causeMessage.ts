/** @internal The message of an error's cause, for error messages: its `message` when it has one, else `String`. */
export const causeMessage = (cause: unknown): string => {
  if (typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string") {
    return cause.message
  }
  return String(cause)
}
