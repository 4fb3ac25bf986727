#include "err.h"

const char *st_strerror(int err)
{
    switch (err) {
    case ST_OK: return "ok";
    case ST_ENOMEM: return "out of memory";
    case ST_EMALFORMED: return "malformed input";
    case ST_ETRUNCATED: return "truncated input";
    case ST_EUNSUPPORTED: return "unsupported";
    case ST_ERANGE: return "out of range";
    case ST_EIO: return "i/o error";
    case ST_ECONFIG: return "bad configuration";
    case ST_ECHECKSUM: return "bad checksum";
    case ST_EFULL: return "queue full";
    case ST_EEXIST: return "exists already";
    case ST_ENOTFOUND: return "not found";
    default: return "unknown error";
    }
}
