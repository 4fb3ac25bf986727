/* webhook.c: being written (issue 6). */
typedef int st_placeholder_webhook;
