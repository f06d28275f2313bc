export {
  type AttemptRule,
  CAPABILITIES,
  type Capability,
  type DataChange,
  type DataUpdate,
  type ExclusiveSweep,
  type ExpirySweep,
  hasCapability,
  type LatchkeyStore,
  type MigrationReport,
  type Migrations,
  type RememberStore,
  type SecondFactorStore,
  type SessionDataPatch,
  type SessionIndex,
  type SessionPlacement,
  type ThrottleDecision,
  type ThrottleStore,
  type UserStore,
} from './core/capabilities.js';
export { type CookieRead, HOST_PREFIX, HostCookie } from './core/cookies.js';
export {
  ARGON2_PARAMS,
  CredentialError,
  isCommonPassword,
  normalizeUsername,
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  USERNAME_MAX_LENGTH,
  usernameKey,
  usernameProblem,
} from './core/credentials.js';
export { CsrfTokens, isSameOrigin, type OriginHeaders } from './core/csrf.js';
export { mergeData } from './core/data.js';
export { type Duration, parseDuration } from './core/duration.js';
export {
  ConfigError,
  DataTooLargeError,
  InvalidInputError,
  LatchkeyError,
  OverloadedError,
  SessionLimitError,
  StoreUnavailableError,
} from './core/errors.js';
export {
  type Authentication,
  type Credentials,
  Latchkey,
  type LatchkeyOptions,
  type LoginContext,
  type LoginResult,
  type Reauthentication,
  type SecondFactorMethod,
  type SecondFactorOptions,
  type SecondFactorRequired,
  type SignupResult,
  type StartedSession,
  type Throttled,
  type UserInfo,
} from './core/latchkey.js';
export type { PasskeyOptions } from './core/passkey-options.js';
export {
  type Ceremony,
  CHALLENGE_MS,
  type PasskeyRegistration,
  Passkeys,
} from './core/passkeys.js';
export type { IsActive, VerifyCredentials } from './core/password-check.js';
export type { RememberOptions } from './core/remember.js';
export {
  type CodeCheck,
  type CodeProof,
  type FactorSummary,
  type SecondFactorStatus,
  SecondFactors,
  type TotpEnrolment,
} from './core/second-factors.js';
export {
  type LoggedIn,
  methodsOf,
  type PasskeyProof,
  type PasskeyVerifier,
  type SecondFactorFailure,
  type SecondFactorProof,
  type StepUp,
} from './core/second-step.js';
export {
  type IssuedSession,
  type NewSession,
  type SessionChanges,
  type SessionEvent,
  type SessionOptions,
  Sessions,
  type Validation,
} from './core/sessions.js';
export {
  type AssuranceLevel,
  AUTH_METHODS,
  type AuthMethod,
  type FactorKind,
  type FactorRecord,
  type JsonObject,
  type JsonValue,
  type RememberRecord,
  type SessionRecord,
  type SessionStore,
  type UserRecord,
} from './core/store.js';
export type { LoginThrottleOptions, ThrottleRule } from './core/throttle.js';
export {
  type Denial,
  RETRY_AFTER_SECONDS,
  type RequestInfo,
  requestInfoOf,
  safeNextPath,
  toResponse,
} from './http/shared.js';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory/index.js';
