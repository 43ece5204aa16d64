/*
 * cairn_req.c — request building and answer reading shared by libcairn and cairn-bench
 * (client/cairn_req.h).
 */
#include "client/cairn_req.h"


void cairn_req_get(Riak__RpbGetReq *req, cairn_buf_t bucket, cairn_buf_t key,
                   const cairn_get_opts_t *o)
{
    req->has_bucket = 1;
    req->bucket = cairn_req_bin(bucket);
    req->has_key = 1;
    req->key = cairn_req_bin(key);
    CAIRN_REQ_SET_TYPE(*req, o->type);
    CAIRN_REQ_SET_U32(*req, r, o->r);
    CAIRN_REQ_SET_U32(*req, pr, o->pr);
    CAIRN_REQ_SET_U32(*req, n_val, o->n_val);
    CAIRN_REQ_SET_TRI(*req, notfound_ok, o->notfound_ok);
    CAIRN_REQ_SET_TRI(*req, basic_quorum, o->basic_quorum);
    CAIRN_REQ_SET_TRI(*req, sloppy_quorum, o->sloppy_quorum);
    CAIRN_REQ_SET_FLAG(*req, head, o->head);
    CAIRN_REQ_SET_FLAG(*req, deletedvclock, o->deletedvclock);
    if (o->if_modified.len) {
        req->has_if_modified = 1;
        req->if_modified = cairn_req_bin(o->if_modified);
    }
    CAIRN_REQ_SET_U32(*req, timeout, o->timeout_ms);
}

void cairn_req_put(Riak__RpbPutReq *req, Riak__RpbContent *content, cairn_buf_t bucket,
                   cairn_buf_t key, cairn_buf_t value, const cairn_put_opts_t *o)
{
    content->has_value = 1;
    content->value = cairn_req_bin(value);
    content->has_content_type = 1;
    content->content_type = cairn_req_bin_str(o->content_type ? o->content_type
                                                    : "application/octet-stream");
    if (o->charset) {
        content->has_charset = 1;
        content->charset = cairn_req_bin_str(o->charset);
    }
    if (o->content_encoding) {
        content->has_content_encoding = 1;
        content->content_encoding = cairn_req_bin_str(o->content_encoding);
    }
    req->has_bucket = 1;
    req->bucket = cairn_req_bin(bucket);
    if (key.len) {
        req->has_key = 1;
        req->key = cairn_req_bin(key);
    }
    if (o->context.len) {
        req->has_vclock = 1;
        req->vclock = cairn_req_bin(o->context);
    }
    req->content = content;
    CAIRN_REQ_SET_TYPE(*req, o->type);
    CAIRN_REQ_SET_U32(*req, w, o->w);
    CAIRN_REQ_SET_U32(*req, dw, o->dw);
    CAIRN_REQ_SET_U32(*req, pw, o->pw);
    CAIRN_REQ_SET_U32(*req, n_val, o->n_val);
    CAIRN_REQ_SET_TRI(*req, sloppy_quorum, o->sloppy_quorum);
    CAIRN_REQ_SET_FLAG(*req, return_body, o->return_body);
    CAIRN_REQ_SET_FLAG(*req, return_head, o->return_head);
    CAIRN_REQ_SET_FLAG(*req, if_not_modified, o->if_not_modified);
    CAIRN_REQ_SET_FLAG(*req, if_none_match, o->if_none_match);
    CAIRN_REQ_SET_U32(*req, timeout, o->timeout_ms);
}

int cairn_req_error_code(const char *msg, bool if_not_modified)
{
    if (strcmp(msg, "overload") == 0)
        return CAIRN_EOVERLOAD;
    if (strcmp(msg, "timeout") == 0)
        return CAIRN_ETIMEOUT;
    if (strcmp(msg, "match_found") == 0)
        return CAIRN_EEXISTS;
    if (strcmp(msg, "modified") == 0)
        return CAIRN_EMODIFIED;
    if (strcmp(msg, "notfound") == 0 && if_not_modified)
        return CAIRN_EMODIFIED;
    static const char *const too_big[] = {"too_large", "too large", "too big", "too_big",
                                          "exceeds maximum", "exceeds the maximum"};
    for (size_t i = 0; i < sizeof too_big / sizeof too_big[0]; i++)
        if (strstr(msg, too_big[i]))
            return CAIRN_ETOOBIG;
    return CAIRN_ESERVER;
}

bool cairn_req_get_found(const Riak__RpbGetResp *resp)
{
    if (resp->has_unchanged && resp->unchanged)
        return true;
    for (size_t i = 0; i < resp->n_content; i++)
        if (!(resp->content[i]->has_deleted && resp->content[i]->deleted))
            return true;
    return false;
}
