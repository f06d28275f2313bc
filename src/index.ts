export { auditLog } from './audit.js';
export { type CookieRead, HostCookie } from './core/cookies.js';
export {
  ARGON2_PARAMS,
  CredentialError,
  isCommonPassword,
  normalizeUsername,
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  USERNAME_MAX_LENGTH,
  usernameKey,
} from './core/credentials.js';
export { CsrfTokens, isSameOrigin, type OriginHeaders } from './core/csrf.js';
export { type Duration, parseDuration } from './core/duration.js';
export {
  ConfigError,
  LatchkeyError,
  SessionLimitError,
  StoreUnavailableError,
} from './core/errors.js';
export {
  type Authentication,
  type Credentials,
  type Denial,
  Latchkey,
  type LatchkeyOptions,
  type LoginContext,
  type LoginResult,
  RETRY_AFTER_SECONDS,
  type Reauthentication,
  type RememberOptions,
  type RequestInfo,
  requestInfoOf,
  type SignupResult,
  type StartedSession,
  safeNextPath,
  type Throttled,
  toResponse,
  type UserInfo,
  type VerifyCredentials,
} from './core/latchkey.js';
export {
  type IssuedSession,
  type NewSession,
  type SessionEvent,
  type SessionOptions,
  Sessions,
  type Validation,
} from './core/sessions.js';
export type {
  CreateResult,
  JsonObject,
  JsonValue,
  LatchkeyStore,
  RememberRecord,
  RememberStore,
  SessionCap,
  SessionRecord,
  SessionStore,
  ThrottleDecision,
  ThrottleRule,
  ThrottleStore,
  UserRecord,
  UserStore,
} from './core/store.js';
export type { LoginThrottleOptions } from './core/throttle.js';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory.js';
