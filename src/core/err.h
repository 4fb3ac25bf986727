/* err.h — one error enum for the whole project; functions return 0 or a negative ST_E* code. */
#ifndef ST_ERR_H
#define ST_ERR_H

enum st_err {
    ST_OK = 0,
    ST_ENOMEM = -1,     /* allocation failed */
    ST_EMALFORMED = -2, /* input does not follow the protocol */
    ST_ETRUNCATED = -3, /* input ends before a field it announces */
    ST_EUNSUPPORTED = -4, /* valid input of a kind this build does not decode */
    ST_ERANGE = -5,     /* value or size over a configured limit */
    ST_EIO = -6,        /* file, socket or database failure */
    ST_ECONFIG = -7,    /* bad configuration or command-line value */
    ST_ECHECKSUM = -8,  /* checksum does not match */
    ST_EFULL = -9,      /* a bounded queue or buffer is full */
    ST_EEXIST = -10,    /* the object to create exists already */
    ST_ENOTFOUND = -11, /* the object named does not exist */
};

/** Human-readable text for an ST_E* code (static string, never NULL). */
const char *st_strerror(int err);

#endif
