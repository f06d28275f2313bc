/** The command line is wrong: exit code 2. */
export class UsageError extends Error {}

/** The command was understood but could not be done: exit code 1. */
export class Failure extends Error {}
