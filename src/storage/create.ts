import type { Env } from "../config/env.js";
import { LocalStorage } from "./local.js";
import { S3Storage } from "./s3.js";
import type { Storage } from "./storage.js";

export type StorageEnv = Pick<
  Env,
  | "STORAGE_DRIVER"
  | "STORAGE_DIR"
  | "S3_BUCKET"
  | "S3_REGION"
  | "S3_ENDPOINT"
  | "S3_ACCESS_KEY_ID"
  | "S3_SECRET_ACCESS_KEY"
  | "S3_FORCE_PATH_STYLE"
  | "S3_CHECKSUM"
>;

export function createStorage(env: StorageEnv): Storage {
  if (env.STORAGE_DRIVER === "local") return new LocalStorage(env.STORAGE_DIR);
  if (!env.S3_BUCKET) throw new Error("S3_BUCKET is required when STORAGE_DRIVER=s3");
  if (Boolean(env.S3_ACCESS_KEY_ID) !== Boolean(env.S3_SECRET_ACCESS_KEY)) {
    throw new Error("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together");
  }
  const storage = new S3Storage(env.S3_BUCKET, {
    region: env.S3_REGION,
    endpoint: env.S3_ENDPOINT,
    forcePathStyle: env.S3_FORCE_PATH_STYLE,
    requestChecksumCalculation: env.S3_CHECKSUM,
    responseChecksumValidation: env.S3_CHECKSUM,
    // Without explicit keys the SDK's default chain applies (instance role, AWS_* variables, ...).
    credentials:
      env.S3_ACCESS_KEY_ID && env.S3_SECRET_ACCESS_KEY
        ? { accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY }
        : undefined,
  });
  storage.origin = { ...env };
  return storage;
}
