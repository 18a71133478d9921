// s3rver ships no type declarations; the tests only use its constructor, run() and close().
declare module "s3rver";
