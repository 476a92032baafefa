/**
 * effect-jobs: long-running background jobs for Effect, with QEMU's job semantics.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Http from "./Http.ts"
/** @since 0.1.0 */
export * as Job from "./Job.ts"
/** @since 0.1.0 */
export * as JobDriver from "./JobDriver.ts"
/** @since 0.1.0 */
export * as JobError from "./JobError.ts"
/** @since 0.1.0 */
export * as JobEvent from "./JobEvent.ts"
/** @since 0.1.0 */
export * as JobHandle from "./JobHandle.ts"
/** @since 0.1.0 */
export * as Jobs from "./Jobs.ts"
/** @since 0.1.0 */
export * as JobStatus from "./JobStatus.ts"
/** @since 0.1.0 */
export * as JobStore from "./JobStore.ts"
/** @since 0.1.0 */
export * as JobTxn from "./JobTxn.ts"
/** @since 0.1.0 */
export * as JobVerb from "./JobVerb.ts"
/** @since 0.1.0 */
export * as Qmp from "./Qmp.ts"
/** @since 0.1.0 */
export * as RateLimit from "./RateLimit.ts"
/** @since 0.1.0 */
export * as RateMeter from "./RateMeter.ts"
/** @since 0.1.0 */
export * as StoreNotice from "./StoreNotice.ts"
/** @since 0.1.0 */
export * as FileDrivers from "./drivers/layer.ts"
